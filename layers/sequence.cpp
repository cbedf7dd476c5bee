#include "sequence.hpp"

namespace xgrad::nn {

template <class T>
RNN<T>::RNN(std::size_t n_x, std::size_t n_a, const RNNOptions& o)
    : Recurrent<RNNCell<T>>(detail::LayerName{"RNN"}, n_x, n_a, recurrent_options(o),
                            o.relu() ? Nonlinearity::relu : Nonlinearity::tanh) {}

template <class T>
LSTM<T>::LSTM(std::size_t n_x, std::size_t n_a, const LSTMOptions& o)
    : Recurrent<LSTMCell<T>>(detail::LayerName{"LSTM"}, n_x, n_a, recurrent_options(o)) {}

template <class T>
GRU<T>::GRU(std::size_t n_x, std::size_t n_a, const GRUOptions& o)
    : Recurrent<GRUCell<T>>(detail::LayerName{"GRU"}, n_x, n_a, recurrent_options(o)) {}

template class Recurrent<RNNCell<float>>;
template class Recurrent<RNNCell<double>>;
template class Recurrent<LSTMCell<float>>;
template class Recurrent<LSTMCell<double>>;
template class Recurrent<GRUCell<float>>;
template class Recurrent<GRUCell<double>>;
template class RNN<float>;
template class RNN<double>;
template class LSTM<float>;
template class LSTM<double>;
template class GRU<float>;
template class GRU<double>;

}  // namespace xgrad::nn
