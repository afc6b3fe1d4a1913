"""Input encoders: the :class:`Encoder` protocol, the registry and :func:`make_encoder`.

Registering an encoder: one module with a class taking ``(x, settings)`` decorated with
``@register(name)``, and its name in the import line below."""
from . import poisson  # noqa: F401  (the shipped encoders, in this order)
from . import direct  # noqa: F401
from .registry import (Encoder, EncoderSettings, check_coding, make_encoder,  # noqa: F401
                       names, register)
