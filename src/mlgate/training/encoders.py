"""Where OneHot lived until the model runtime moved below training (runtime/encoders.py): model
files written before name this path, and loading them finds the class here."""

from mlgate.runtime.encoders import MISSING_CATEGORY, OneHot

__all__ = ["MISSING_CATEGORY", "OneHot"]
