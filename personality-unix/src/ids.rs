//! A process's user and group ids (real, effective, saved) and the rules of setuid, setreuid,
//! setresuid and their group twins, as Linux has them: the superuser (effective uid 0) may
//! set any id; anyone else may only move between the ids it already has.
//!
//! Pure logic, host-tested. It must never let an unprivileged process take an id it does
//! not hold.

/// "Leave this id as it is" in setreuid and setresuid (-1 as an unsigned 32-bit id).
pub const UNCHANGED: u32 = u32::MAX;

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
}

/// The change is not allowed (EPERM).
#[derive(Debug, PartialEq, Eq)]
pub struct NotPermitted;

/// One triple (real, effective, saved) of user or group ids.
type Triple = (u32, u32, u32);

fn set_one(ids: Triple, privileged: bool, id: u32) -> Result<Triple, NotPermitted> {
    let (real, _, saved) = ids;
    if privileged {
        Ok((id, id, id))
    } else if id == real || id == saved {
        Ok((real, id, saved))
    } else {
        Err(NotPermitted)
    }
}

fn set_re(ids: Triple, privileged: bool, r: u32, e: u32) -> Result<Triple, NotPermitted> {
    let (real, effective, saved) = ids;
    let new_real = if r == UNCHANGED { real } else { r };
    let new_effective = if e == UNCHANGED { effective } else { e };
    if !privileged
        && ((r != UNCHANGED && r != real && r != effective)
            || (e != UNCHANGED && e != real && e != effective && e != saved))
    {
        return Err(NotPermitted);
    }
    let new_saved = if r != UNCHANGED || (e != UNCHANGED && e != real) { new_effective } else { saved };
    Ok((new_real, new_effective, new_saved))
}

fn set_res(ids: Triple, privileged: bool, r: u32, e: u32, s: u32) -> Result<Triple, NotPermitted> {
    let (real, effective, saved) = ids;
    let held = |id: u32| id == UNCHANGED || id == real || id == effective || id == saved;
    if !privileged && ![r, e, s].into_iter().all(held) {
        return Err(NotPermitted);
    }
    let pick = |new: u32, old: u32| if new == UNCHANGED { old } else { new };
    Ok((pick(r, real), pick(e, effective), pick(s, saved)))
}

impl Ids {
    fn privileged(&self) -> bool {
        self.euid == 0
    }

    fn users(&self) -> Triple {
        (self.uid, self.euid, self.suid)
    }

    fn groups(&self) -> Triple {
        (self.gid, self.egid, self.sgid)
    }

    fn with_users(self, (uid, euid, suid): Triple) -> Ids {
        Ids { uid, euid, suid, ..self }
    }

    fn with_groups(self, (gid, egid, sgid): Triple) -> Ids {
        Ids { gid, egid, sgid, ..self }
    }

    pub fn setuid(&mut self, uid: u32) -> Result<(), NotPermitted> {
        *self = self.with_users(set_one(self.users(), self.privileged(), uid)?);
        Ok(())
    }

    pub fn setgid(&mut self, gid: u32) -> Result<(), NotPermitted> {
        *self = self.with_groups(set_one(self.groups(), self.privileged(), gid)?);
        Ok(())
    }

    pub fn setreuid(&mut self, r: u32, e: u32) -> Result<(), NotPermitted> {
        *self = self.with_users(set_re(self.users(), self.privileged(), r, e)?);
        Ok(())
    }

    pub fn setregid(&mut self, r: u32, e: u32) -> Result<(), NotPermitted> {
        *self = self.with_groups(set_re(self.groups(), self.privileged(), r, e)?);
        Ok(())
    }

    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<(), NotPermitted> {
        *self = self.with_users(set_res(self.users(), self.privileged(), r, e, s)?);
        Ok(())
    }

    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<(), NotPermitted> {
        *self = self.with_groups(set_res(self.groups(), self.privileged(), r, e, s)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_may_become_anyone_and_then_cannot_come_back() {
        let mut ids = Ids::default();
        ids.setgid(100).unwrap();
        ids.setuid(1000).unwrap();
        assert_eq!(ids, Ids { uid: 1000, euid: 1000, suid: 1000, gid: 100, egid: 100, sgid: 100 });
        assert_eq!(ids.setuid(0), Err(NotPermitted));
        assert_eq!(ids.setgid(0), Err(NotPermitted));
        assert_eq!(ids.setresuid(UNCHANGED, 0, UNCHANGED), Err(NotPermitted));
        assert_eq!(ids.setreuid(0, UNCHANGED), Err(NotPermitted));
    }

    #[test]
    fn an_unprivileged_process_moves_between_the_ids_it_holds() {
        // A set-uid style process: real 1000, effective and saved 0 ... after dropping.
        let mut ids = Ids { uid: 1000, euid: 0, suid: 0, ..Ids::default() };
        ids.setresuid(UNCHANGED, 1000, UNCHANGED).unwrap();
        assert_eq!((ids.uid, ids.euid, ids.suid), (1000, 1000, 0));
        // The saved id lets it take 0 back.
        ids.setuid(0).unwrap();
        assert_eq!((ids.uid, ids.euid, ids.suid), (1000, 0, 0));
        // setreuid with a real id changes the saved one too.
        ids.setreuid(1000, 1000).unwrap();
        assert_eq!((ids.uid, ids.euid, ids.suid), (1000, 1000, 1000));
        assert_eq!(ids.setreuid(UNCHANGED, 0), Err(NotPermitted));
    }
}
