// xgrad: everything in one include. Installed as <xgrad/xgrad.hpp>.
#pragma once

#include "autograd/errors.hpp"
#include "autograd/tape.hpp"
#include "autograd/var.hpp"
#include "autograd/ops.hpp"
#include "autograd/losses.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/dot.hpp"
#include "autograd/blas.hpp"
#include "layers/module.hpp"
#include "layers/linear.hpp"
#include "layers/embedding.hpp"
#include "layers/rnn_cell.hpp"
#include "layers/lstm_cell.hpp"
#include "layers/gru_cell.hpp"
#include "layers/sequence.hpp"
#include "layers/reference/rnn.hpp"
