// xgrad::dist, data-parallel training over MPI: #include <xgrad/dist.hpp> and link xgrad::dist.
// Kept out of xgrad.hpp because it is a separate library, built only when MPI is found.
#pragma once

#include "dist/dist.hpp"
