//! The name service's table: names, the send rights registered under them, and which child
//! registered each (so a child's names go when it ends and a restarted driver can register
//! them again).
//!
//! It must never hold a right twice: a right is released when its name is forgotten.

use alloc::string::String;
use alloc::vec::Vec;
use libmach::ipc::{PortName, port_deallocate};
use libmach::name_service::{MAX_NAME, NameError};

/// Most names the service keeps.
const MAX_NAMES: usize = 64;

struct Entry {
    name: String,
    port: PortName,
    /// Index of the child that registered it.
    owner: usize,
}

#[derive(Default)]
pub struct Names {
    entries: Vec<Entry>,
}

impl Names {
    pub fn find(&self, name: &str) -> Option<PortName> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.port)
    }

    pub fn register(&mut self, name: &str, port: PortName, owner: usize) -> Result<(), NameError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(NameError::BadName);
        }
        if self.find(name).is_some() {
            return Err(NameError::Exists);
        }
        if self.entries.len() >= MAX_NAMES {
            return Err(NameError::TableFull);
        }
        self.entries.push(Entry { name: name.into(), port, owner });
        Ok(())
    }

    /// Every name with the child that registered it.
    /// The child that registered `name`.
    pub fn owner(&self, name: &str) -> Option<usize> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.owner)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.entries.iter().map(|e| (e.name.as_str(), e.owner))
    }

    /// Forget every name `owner` registered, releasing the rights.
    pub fn forget_owner(&mut self, owner: usize) {
        self.entries.retain(|e| {
            if e.owner == owner {
                let _ = port_deallocate(e.port);
            }
            e.owner != owner
        });
    }
}
