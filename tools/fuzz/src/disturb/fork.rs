//! Processes that share the fds: a child inherits every zcopy fd (the
//! contexts are the parent's), registers its copy-on-write view of the
//! pool, sends and reads (see [`crate::child`]), sometimes as `nobody`
//! with a small memlock limit, and is killed with `SIGKILL` mid-activity:
//! regions charged to a dead process's mm, records nobody reads, a
//! context of its own torn down by its exit with sends in flight.

use crate::{
    child::{self, Plan},
    pool,
    rng::Rng,
    state::Shared,
};

/// The plan for the next child: fixed arrays, filled here; the slots
/// from `slots`, as they are while the pool is held.
fn plan(sh: &Shared, rng: &mut Rng, slots: &[pool::Slot]) -> Plan {
    let mut p = Plan {
        zfds: [-1; child::MAX_FDS],
        nzfds: 0,
        socks: [-1; child::MAX_SOCKS],
        nsocks: 0,
        slots: [(0, 0, false); child::MAX_SLOTS],
        nslots: 0,
        scratch: sh.wild.scratch.base() as u64,
        scratch_len: sh.wild.scratch.len() as u64,
        file: sh
            .zoo
            .pick_of(rng, &[crate::fds::FdKind::File])
            .map_or(-1, |(_, fd)| fd),
        seed: rng.next_u64(),
        drop_priv: rng.chance(1, 3),
        open_own: rng.chance(1, 2),
        // SAFETY: getpid(2).
        parent: unsafe { libc::getpid() },
        iters: rng.range(100, 100_000) as u32,
    };
    // The shared contexts only: the workers' private ones stay theirs.
    for z in sh.shared.iter().take(child::MAX_FDS) {
        p.zfds[p.nzfds] = z.fd;
        p.nzfds += 1;
    }
    for fd in sh
        .socks
        .fds()
        .into_iter()
        .filter(|&f| f >= 0)
        .take(child::MAX_SOCKS)
    {
        p.socks[p.nsocks] = fd;
        p.nsocks += 1;
    }
    for s in slots {
        if s.state == pool::State::Mapped
            && s.kind != pool::Kind::NoAccess
            && p.nslots < child::MAX_SLOTS
        {
            let writable = !s.read_only();
            p.slots[p.nslots] = (s.base as u64, s.len as u64, writable);
            p.nslots += 1;
        }
    }
    p
}

pub fn run(sh: &Shared, mut rng: Rng) {
    while super::pause(sh, &mut rng, 20, 300) {
        // The pool is held from the plan to the fork: the child's copy of
        // every slot is what the plan says.
        let (pid, p) = sh.pool.hold(|slots| {
            let p = plan(sh, &mut rng, slots);
            // SAFETY: fork(2). The child runs `child::run`, which makes
            // only system calls on the plan prepared above, never returns,
            // and never takes the lock held here.
            (unsafe { libc::fork() }, p)
        });
        if pid == 0 {
            child::run(&p);
        }
        if pid < 0 {
            super::count("fork", "failed");
            continue;
        }
        let lived = super::pause(sh, &mut rng, 1, 200);
        let mut status = 0;
        // Sometimes it finishes by itself (exit with everything open).
        // SAFETY: waitpid on our child.
        let exited = lived
            && rng.chance(1, 10)
            && unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid;
        if !exited {
            // SAFETY: our child; then reap it.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
        }
        let how = if libc::WIFSIGNALED(status) {
            match libc::WTERMSIG(status) {
                libc::SIGKILL => "killed",
                _ => "died-of-signal",
            }
        } else {
            "exited"
        };
        super::count("fork", how);
    }
}
