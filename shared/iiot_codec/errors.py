"""The codec's one exception type."""


class CodecError(ValueError):
    """Raised for any input the codec cannot accept.

    ``reason`` is a short machine-readable code so callers can count failures by kind
    without parsing messages: "crc", "mic", "truncated", "version", "type", "format",
    "metric", "value", "key", "no_frame".
    """

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self):
        return self.message
