// What the training examples share: typed reads of a checkpoint's extra values with clear
// errors, loss-curve series kept in checkpoints, and main()'s error handling.
#pragma once

#include <cstdint>
#include <exception>
#include <iostream>
#include <string>

#include <xgrad/io/checkpoint.hpp>

#include "common/plot.hpp"

namespace xgrad::examples {

// Typed values of a checkpoint's extra map; a missing key or another type is a CheckpointError
// naming the key and the file.
std::int64_t extra_int(const CheckpointExtra& extra, const std::string& key, const std::string& path);
double extra_double(const CheckpointExtra& extra, const std::string& key, const std::string& path);
std::string extra_string(const CheckpointExtra& extra, const std::string& key, const std::string& path);
Array<float> extra_floats(const CheckpointExtra& extra, const std::string& key, const std::string& path);

// The extra values of the checkpoint at `path`, after checking that it was written by `program`
// (extra "model"): a checkpoint of another example is a CheckpointError saying whose it is.
CheckpointExtra load_extra_of(const std::string& program, const std::string& path);

// A curve kept in a checkpoint as "<key>.x" and "<key>.y" (float64 arrays), so a resumed run
// draws the whole curve.
void put_series(CheckpointExtra& extra, const std::string& key, const Series& s);
Series get_series(const CheckpointExtra& extra, const std::string& key, const std::string& name);

// A resumed run must train the model the checkpoint holds: an option given on the command line
// that differs from the checkpoint's value is an error ("--cell lstm, but the checkpoint holds gru").
void check_same(const std::string& option, const std::string& given, const std::string& saved, bool was_given,
                const std::string& path);

// Runs body(); an exception becomes "<program>: <message>" on stderr and exit status 1.
template <class F>
int guarded_main(const char* program, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace xgrad::examples
