#include "common/dates.hpp"

#include <xgrad/data/data.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>

namespace xgrad::examples {

namespace {

const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                               "July",    "August",   "September", "October", "November", "December"};
const char* const kWeekdays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                 "Friday", "Saturday", "Sunday"};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string two(int v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", v);
  return buf;
}
std::string ordinal(int d) {
  const char* suffix = "th";
  if (d % 100 < 11 || d % 100 > 13) {
    if (d % 10 == 1) suffix = "st";
    else if (d % 10 == 2) suffix = "nd";
    else if (d % 10 == 3) suffix = "rd";
  }
  return std::to_string(d) + suffix;
}

void check(const Date& d, const char* who) {
  if (!is_valid(d))
    throw std::invalid_argument(std::string(who) + ": invalid date " + std::to_string(d.year) +
                                "-" + std::to_string(d.month) + "-" + std::to_string(d.day));
}

}  // namespace

bool is_leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12) return 0;
  return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

bool is_valid(const Date& d) {
  return d.year >= 1 && d.year <= 9999 && d.month >= 1 && d.month <= 12 && d.day >= 1 &&
         d.day <= days_in_month(d.year, d.month);
}

// Howard Hinnant's days_from_civil / civil_from_days: eras of 400 years starting in March.
std::int64_t days_from_civil(const Date& d) {
  const std::int64_t y = d.year - (d.month <= 2);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (d.month + (d.month > 2 ? -3 : 9)) + 2) / 5 + d.day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

Date civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int year = static_cast<int>(yoe + era * 400 + (month <= 2));
  return {year, month, day};
}

int weekday(const Date& d) {
  // 1970-01-01 was a Thursday (3 when Monday is 0).
  const std::int64_t w = (days_from_civil(d) + 3) % 7;
  return static_cast<int>(w < 0 ? w + 7 : w);
}

const char* weekday_name(int w) {
  if (w < 0 || w > 6) throw std::invalid_argument("weekday_name: " + std::to_string(w));
  return kWeekdays[w];
}
const char* month_name(int m) {
  if (m < 1 || m > 12) throw std::invalid_argument("month_name: " + std::to_string(m));
  return kMonths[m - 1];
}

std::string iso_date(const Date& d) {
  check(d, "iso_date");
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

std::string format_date(const Date& d, int format) {
  check(d, "format_date");
  const std::string month = kMonths[d.month - 1], mon = month.substr(0, 3);
  const std::string wday = kWeekdays[weekday(d)], wdy = wday.substr(0, 3);
  const std::string day = std::to_string(d.day), year = std::to_string(d.year);
  const bool short_year = format == 1 || format == 7 || format == 13;
  if (short_year && (d.year < kMinYear || d.year > kMaxYear))
    throw std::invalid_argument("format_date: format " + std::to_string(format) +
                                " has a two-digit year, " + year + " is outside " +
                                std::to_string(kMinYear) + ".." + std::to_string(kMaxYear));
  const std::string yy = two(d.year % 100);
  switch (format) {
    case 0: return day + " " + month + " " + year;
    case 1: return wdy + " " + two(d.day) + "/" + two(d.month) + "/" + yy;
    case 2: return lower(month) + " " + day + ", " + year;
    case 3: return two(d.day) + "." + two(d.month) + "." + year;
    case 4: return mon + " " + day + " " + year;
    case 5: return year + "/" + two(d.month) + "/" + two(d.day);
    case 6: return wday + ", " + month + " " + day + ", " + year;
    case 7: return two(d.day) + "-" + mon + "-" + yy;
    case 8: return two(d.month) + "/" + two(d.day) + "/" + year;
    case 9: return day + " " + lower(mon) + " " + year;
    case 10: return wday + " " + day + " " + month + " " + year;
    case 11: return upper(mon) + " " + day + ", " + year;
    case 12: return month + " " + ordinal(d.day) + ", " + year;
    case 13: return day + " " + lower(mon) + ". '" + yy;
    default:
      throw std::invalid_argument("format_date: format " + std::to_string(format) +
                                  " outside [0, " + std::to_string(kDateFormatCount) + ")");
  }
}

std::vector<DatePair> make_date_pairs(std::size_t n, std::uint64_t seed, int min_year,
                                      int max_year) {
  if (min_year < kMinYear || max_year > kMaxYear || min_year > max_year)
    throw std::invalid_argument("make_date_pairs: years " + std::to_string(min_year) + ".." +
                                std::to_string(max_year) + " not within " +
                                std::to_string(kMinYear) + ".." + std::to_string(kMaxYear));
  const std::int64_t first = days_from_civil({min_year, 1, 1});
  const std::int64_t span = days_from_civil({max_year, 12, 31}) - first + 1;
  std::mt19937_64 rng(seed);
  std::vector<DatePair> pairs;
  pairs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Date d = civil_from_days(first + static_cast<std::int64_t>(
                                               data::uniform_index(rng, static_cast<std::uint64_t>(span))));
    const int f = static_cast<int>(data::uniform_index(rng, kDateFormatCount));
    pairs.push_back({format_date(d, f), iso_date(d), d, f});
  }
  return pairs;
}

std::string date_input_alphabet() {
  std::set<char> chars;
  auto add = [&](const std::string& s) { chars.insert(s.begin(), s.end()); };
  for (const char* m : kMonths) add(m), add(lower(m)), add(upper(m));
  for (const char* w : kWeekdays) add(w);
  add("0123456789 ,./-'");
  add("stndrh");  // ordinal suffixes (already there, kept for clarity)
  return std::string(chars.begin(), chars.end());
}

std::string date_output_alphabet() { return "-0123456789"; }

}  // namespace xgrad::examples
