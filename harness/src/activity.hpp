#pragma once
// What the sweep is doing right now, for progress reports within long work: each unit
// in flight with the stage it is in and for how long (Progress::running).
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace xposcheck::detail {

class ActivityBoard {
 public:
  using Clock = std::chrono::steady_clock;
  std::size_t begin(std::string label) {
    std::lock_guard lock(mutex_);
    entries_[next_] = {std::move(label), "", Clock::now()};
    return next_++;
  }
  void stage(std::size_t id, std::string stage) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second.stage = std::move(stage);
    it->second.since = Clock::now();
  }
  void end(std::size_t id) {
    std::lock_guard lock(mutex_);
    entries_.erase(id);
  }
  // "D128-N65536-s1 fp32: golden outputs, 12 s", oldest first.
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    const auto now = Clock::now();
    for (const auto& [id, e] : entries_) {
      const double s = std::chrono::duration<double>(now - e.since).count();
      out.push_back(fmt::format("{}: {}, {:.0f} s", e.label, e.stage, s));
    }
    return out;
  }

 private:
  struct Entry {
    std::string label, stage;
    Clock::time_point since;
  };
  mutable std::mutex mutex_;
  std::map<std::size_t, Entry> entries_;
  std::size_t next_ = 0;
};

// One unit's entry on the board while it lives.
class Activity {
 public:
  Activity(ActivityBoard& board, std::string label) : board_(board), id_(board.begin(std::move(label))) {}
  ~Activity() { board_.end(id_); }
  Activity(const Activity&) = delete;
  Activity& operator=(const Activity&) = delete;
  void stage(std::string stage) { board_.stage(id_, std::move(stage)); }

 private:
  ActivityBoard& board_;
  std::size_t id_;
};

}  // namespace xposcheck::detail
