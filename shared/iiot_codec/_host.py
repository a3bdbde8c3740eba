"""Every public name of the package, imported at once: what `iiot_codec` gives on the host
(the board resolves the same names lazily, see __init__.py). Names are re-exported
explicitly (`x as x`) for type checkers."""

import sys

from . import _API
from .decode import (
    DUPLICATE as DUPLICATE,
)
from .decode import (
    NEW as NEW,
)
from .decode import (
    RESET as RESET,
)
from .decode import (
    STALE as STALE,
)
from .decode import (
    classify as classify,
)
from .decode import (
    decode as decode,
)
from .frame import (
    ACK as ACK,
)
from .frame import (
    BATCH as BATCH,
)
from .frame import (
    F_ACK_REQ as F_ACK_REQ,
)
from .frame import (
    F_AGE as F_AGE,
)
from .frame import (
    F_FCNT_HI as F_FCNT_HI,
)
from .frame import (
    F_HOLD as F_HOLD,
)
from .frame import (
    F_MIC as F_MIC,
)
from .frame import (
    F_RESYNC as F_RESYNC,
)
from .frame import (
    OPT_RETRY_S as OPT_RETRY_S,
)
from .frame import (
    STATS as STATS,
)
from .frame import (
    TELEMETRY as TELEMETRY,
)
from .frame import (
    VERSION as VERSION,
)
from .frame import (
    Frame as Frame,
)
from .frame import (
    decode_ack as decode_ack,
)
from .frame import (
    encode_ack as encode_ack,
)
from .frame import (
    encode_readings as encode_readings,
)
from .frame import (
    encode_stats as encode_stats,
)
from .frame import (
    encode_telemetry as encode_telemetry,
)
from .frame import (
    peek as peek,
)
from .frame import (
    place_counter as place_counter,
)
from .line import (
    Line as Line,
)
from .line import (
    Session as Session,
)
from .line import (
    decode_host_ack as decode_host_ack,
)
from .line import (
    decode_host_line as decode_host_line,
)
from .line import (
    decode_line as decode_line,
)
from .line import (
    encode_downlink as encode_downlink,
)
from .line import (
    encode_hello as encode_hello,
)
from .line import (
    encode_host_ack as encode_host_ack,
)
from .line import (
    encode_line as encode_line,
)
from .line import (
    encode_session as encode_session,
)
from .line import (
    line_from_object as line_from_object,
)
from .line import (
    parse_object as parse_object,
)
from .line import (
    session_from_object as session_from_object,
)
from .metrics import (
    BY_NAME as BY_NAME,
)
from .metrics import (
    LINK_ROWS as LINK_ROWS,
)
from .metrics import (
    ROWS as ROWS,
)
from .metrics import (
    quantize as quantize,
)
from .values import (
    BY_ID as BY_ID,
)
from .values import (
    Metric as Metric,
)
from .values import (
    format_value as format_value,
)
from .values import (
    metric as metric,
)
from .wire import (
    KEY_LEN as KEY_LEN,
)
from .wire import (
    MIC_LEN as MIC_LEN,
)
from .wire import (
    CodecError as CodecError,
)
from .wire import (
    crc16 as crc16,
)
from .wire import (
    hmac_sha256 as hmac_sha256,
)

# The package's __all__, set from here rather than computed in this module or in
# __init__.py: a type checker cannot read a computed __all__, and seeing one here it would
# hide every name of the `import *` in __init__.py (in __init__.py it would cost the board
# bytecode).
_package = sys.modules[__name__.rpartition(".")[0]]
_package.__dict__["__all__"] = sorted(n for _, names in _API for n in names.split())
