// Table: aligned text columns for the human output of `chorus` (headers, then rows, padded to the
// widest cell). Plain data; one thread.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace chorus::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : rows_{std::move(headers)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t row_count() const { return rows_.size() - 1; }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `text` cut to `width_max` characters with "..." at the end; newlines shown as spaces.
std::string shorten(const std::string& text, size_t width_max);

}  // namespace chorus::cli
