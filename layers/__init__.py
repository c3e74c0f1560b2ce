"""Reusable Keras layers for recurrent networks. Nothing here imports `pipelines`, `export` or `apps`.

`import layers` registers every layer, loss and optimizer of the package with Keras, so that
`keras.saving.load_model` can load a model (and its compiled optimizer) that uses them.
"""

PACKAGE = "rnnapps"  # the one `register_keras_serializable` package name

# Imported after PACKAGE, which they read. Importing registers them with Keras.
from layers import cells  # noqa: E402, F401  (every cell module)
from layers.attention_decoder import AttentionDecoder  # noqa: E402, F401
from layers.bag_of_ngrams import BagOfNgrams  # noqa: E402, F401
from layers.bahdanau_attention import BahdanauAttention  # noqa: E402, F401
from layers.batchnorm_lstm import BatchNormLSTM  # noqa: E402, F401
from layers.carried_state import CarriedState  # noqa: E402, F401
from layers.char_cnn import CharCNN, VocabularySpelling  # noqa: E402, F401
from layers.clipping import ClippedAdam, ClippedRMSprop, ClippedSGD  # noqa: E402, F401
from layers.embedding_dropout import DropoutEmbedding  # noqa: E402, F401
from layers.ensemble import EnsembleLogits, MemberLogits, MembersAccuracy, MembersCrossEntropy  # noqa: E402, F401
from layers.fused import FusedGRU, FusedLSTM  # noqa: E402, F401
from layers.luong_attention import LuongAttention  # noqa: E402, F401
from layers.layernorm_lstm_cell import LayerNormLSTMCell  # noqa: E402, F401
from layers.masked_cross_entropy import MaskedCrossEntropy, WeightedTokenCrossEntropy  # noqa: E402, F401
from layers.masked_pooling import MaskedPooling  # noqa: E402, F401
from layers.position_embedding import PositionEmbedding  # noqa: E402, F401
from layers.recurrent import Recurrent  # noqa: E402, F401
from layers.recurrent_stack import RecurrentStack  # noqa: E402, F401
from layers.strided_conv import MaskedStridedConv1D  # noqa: E402, F401
