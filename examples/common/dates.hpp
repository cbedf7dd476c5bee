// Dates as people write them, paired with the ISO date, for seq2seq:
//   "Tue 24/11/26" -> "2026-11-24". Generated from a seed; English names; ASCII only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xgrad::examples {

struct Date {
  int year, month, day;  // month 1..12, day 1..31
  bool operator==(const Date& o) const {
    return year == o.year && month == o.month && day == o.day;
  }
};

struct DatePair {
  std::string human;  // e.g. "Tuesday, November 24, 2026"
  std::string iso;    // "2026-11-24"
  Date date;
  int format;         // index into the formats, 0..kDateFormatCount-1
};

// The formats, for 24 November 2026 (format_date(d, i)):
//   0 "24 November 2026"            7 "24-Nov-26"
//   1 "Tue 24/11/26"                8 "11/24/2026"
//   2 "november 24, 2026"           9 "24 nov 2026"
//   3 "24.11.2026"                 10 "Tuesday 24 November 2026"
//   4 "Nov 24 2026"                11 "NOV 24, 2026"
//   5 "2026/11/24"                 12 "November 24th, 2026"
//   6 "Tuesday, November 24, 2026" 13 "24 nov. '26"
// Each string determines its date: the one month-first all-numeric format (8, US style) has a
// four-digit year, the day-first numeric ones use '.' or a weekday and a two-digit year, and a
// two-digit year yy is 19yy for yy >= 50 and 20yy otherwise, so dates must lie in 1950..2049.
inline constexpr int kDateFormatCount = 14;
inline constexpr int kMinYear = 1950, kMaxYear = 2049;

bool is_leap_year(int year);
int days_in_month(int year, int month);
bool is_valid(const Date& d);
// Days since 1970-01-01 (negative before), proleptic Gregorian; and back.
std::int64_t days_from_civil(const Date& d);
Date civil_from_days(std::int64_t days);
// 0 = Monday .. 6 = Sunday.
int weekday(const Date& d);
const char* weekday_name(int weekday);  // "Monday"
const char* month_name(int month);      // "January" for 1

// "2026-11-24". Throws std::invalid_argument for an invalid date.
std::string iso_date(const Date& d);
// The human-written form; throws std::invalid_argument for an invalid date, a format outside
// [0, kDateFormatCount) or a two-digit-year format for a year outside kMinYear..kMaxYear.
std::string format_date(const Date& d, int format);
// n pairs, dates uniform over [min_year-01-01, max_year-12-31], formats uniform, from
// std::mt19937_64(seed): the same seed gives the same pairs on every run and platform.
std::vector<DatePair> make_date_pairs(std::size_t n, std::uint64_t seed, int min_year = kMinYear,
                                      int max_year = kMaxYear);

// Every character the human-written forms can contain, sorted; and those of the ISO forms
// ("-0123456789"). Vocabularies for the encoder and the decoder.
std::string date_input_alphabet();
std::string date_output_alphabet();

}  // namespace xgrad::examples
