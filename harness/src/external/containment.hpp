#pragma once
// Keeps every process a candidate starts inside the sweep's lifetime, and leaves no
// work directory behind, even when the sweep itself is interrupted.
//
// - xposcheck becomes a child subreaper (PR_SET_CHILD_SUBREAPER): a descendant whose
//   parent ends (a `setsid sleep 1000 &` of a candidate, a daemon that double-forks)
//   re-parents to xposcheck instead of init.
// - Every candidate process starts in a process group of its own and is registered
//   here while it lives. When one ends, reap_strays() kills and reaps each child of
//   xposcheck that is neither a live candidate nor in xposcheck's own process group
//   (the harness's own helpers, such as popen's, live there), together with the
//   process group it leads: what a candidate left behind. This is polled, not
//   event-driven: a stray lives until the candidate that started it ends.
// - SIGINT and SIGTERM reach a handler that only writes to a pipe; a thread reading
//   it kills the live candidate groups and the strays, removes the registered work
//   directories and exits with 128 + the signal. Records already finished are in the
//   results journal, which is written one record at a time.
#include <filesystem>
#include <functional>

namespace xposcheck::external {

// Once per process; later calls do nothing. Called by the first spawn.
void enable_containment();

// Runs `spawn` (which starts a process in a new process group and returns its pid,
// or -1) with the registry locked, so that reap_strays never mistakes a process
// that is starting for a stray, and registers the new group.
int spawn_contained(const std::function<int()>& spawn);
// The candidate's group leader has been reaped: its group is no longer live.
void release_group(int pid);

// Work directories to remove when the sweep is interrupted.
void register_work_dir(const std::filesystem::path& dir);
void release_work_dir(const std::filesystem::path& dir);

// Kills and reaps what candidates left behind (see above). Returns how many
// processes it found.
int reap_strays();

}  // namespace xposcheck::external
