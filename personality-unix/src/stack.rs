//! A new Linux process's first stack, as the x86-64 System V ABI lays it out: at the stack
//! pointer `argc`, then the `argv` pointers and a null, the `envp` pointers and a null, the
//! auxiliary vector's (key, value) pairs ending with `AT_NULL`; above them the strings and the
//! 16 random bytes `AT_RANDOM` points at. The stack pointer is 16-byte aligned.
//!
//! Pure: it builds the bytes for a stack whose top is at `top` (in the new process), and the
//! caller writes them there. It must never produce a pointer outside the bytes it returns.

use alloc::vec::Vec;

/// The built stack: `bytes` go at `top - bytes.len()`; the process starts with rsp =
/// `stack_pointer`.
pub struct InitialStack {
    pub bytes: Vec<u8>,
    pub stack_pointer: u64,
    /// Where `AT_EXECFN`'s string went (for the caller's auxv: already filled in).
    pub execfn: u64,
}

/// Build the stack for `argv` and `envp` (strings without their NUL), the auxiliary vector
/// `auxv` (without `AT_RANDOM`, `AT_EXECFN` and `AT_NULL`, which this adds), `random`'s 16
/// bytes and the program's path `execfn`.
pub fn build(
    top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    auxv: &[(u64, u64)],
    random: [u8; 16],
    execfn: &[u8],
) -> InitialStack {
    use crate::linux::auxv::{AT_EXECFN, AT_NULL, AT_RANDOM};
    // The strings area, from the top down: execfn, envp strings, argv strings, random.
    let mut strings: Vec<u8> = Vec::new();
    let mut place = |s: &[u8]| -> usize {
        strings.extend_from_slice(s);
        strings.push(0);
        strings.len() - s.len() - 1
    };
    let execfn_at = place(execfn);
    let argv_at: Vec<usize> = argv.iter().map(|s| place(s)).collect();
    let envp_at: Vec<usize> = envp.iter().map(|s| place(s)).collect();
    let random_at = strings.len();
    strings.extend_from_slice(&random);
    while !strings.len().is_multiple_of(16) {
        strings.push(0);
    }
    let strings_base = top - strings.len() as u64;
    let address = |offset: usize| strings_base + offset as u64;

    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(argv_at.iter().map(|&o| address(o)));
    words.push(0);
    words.extend(envp_at.iter().map(|&o| address(o)));
    words.push(0);
    for &(key, value) in auxv {
        words.extend([key, value]);
    }
    words.extend([AT_RANDOM, address(random_at), AT_EXECFN, address(execfn_at), AT_NULL, 0]);
    if !words.len().is_multiple_of(2) {
        words.push(0); // padding above the vector keeps rsp 16-byte aligned
    }
    let stack_pointer = strings_base - words.len() as u64 * 8;
    let mut bytes = Vec::with_capacity(words.len() * 8 + strings.len());
    for w in &words {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    bytes.extend_from_slice(&strings);
    InitialStack { bytes, stack_pointer, execfn: address(execfn_at) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::auxv::*;

    fn word(bytes: &[u8], base: u64, at: u64) -> u64 {
        let o = (at - base) as usize;
        u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap())
    }

    fn string(bytes: &[u8], base: u64, at: u64) -> Vec<u8> {
        let o = (at - base) as usize;
        bytes[o..].iter().take_while(|&&b| b != 0).copied().collect()
    }

    #[test]
    fn argc_argv_envp_and_auxv_are_where_the_abi_says() {
        let one: [&[u8]; 1] = [b"/bin/hello"];
        let three: [&[u8]; 3] = [b"/bin/sh", b"-c", b"echo hi"];
        for argv in [&one[..], &three[..]] {
            let top = 0x7fff_ffff_0000;
            let s = build(
                top,
                argv,
                &[b"PATH=/bin", b"HOME=/"],
                &[(AT_PAGESZ, 4096), (AT_ENTRY, 0x401000)],
                [7; 16],
                b"/bin/x",
            );
            let base = top - s.bytes.len() as u64;
            assert_eq!(s.stack_pointer % 16, 0, "rsp 16-byte aligned");
            let rsp = s.stack_pointer;
            assert_eq!(word(&s.bytes, base, rsp), argv.len() as u64, "argc");
            for (i, a) in argv.iter().enumerate() {
                assert_eq!(string(&s.bytes, base, word(&s.bytes, base, rsp + 8 + 8 * i as u64)), a.to_vec());
            }
            let envp = rsp + 8 + 8 * argv.len() as u64 + 8;
            assert_eq!(word(&s.bytes, base, envp - 8), 0, "argv's null");
            assert_eq!(string(&s.bytes, base, word(&s.bytes, base, envp)), b"PATH=/bin".to_vec());
            assert_eq!(word(&s.bytes, base, envp + 16), 0, "envp's null");
            let mut at = envp + 24;
            let mut found = std::collections::HashMap::new();
            loop {
                let (k, v) = (word(&s.bytes, base, at), word(&s.bytes, base, at + 8));
                if k == AT_NULL {
                    break;
                }
                found.insert(k, v);
                at += 16;
            }
            assert_eq!(found[&AT_PAGESZ], 4096);
            assert_eq!(found[&AT_ENTRY], 0x401000);
            let random = found[&AT_RANDOM];
            assert_eq!(&s.bytes[(random - base) as usize..(random - base) as usize + 16], &[7; 16]);
            assert_eq!(string(&s.bytes, base, found[&AT_EXECFN]), b"/bin/x".to_vec());
            assert!(at + 16 <= top, "the vector fits below the top");
        }
    }
}
