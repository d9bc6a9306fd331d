"""Custom TFX components of the polyvit_tf pipeline (thin shells around the library)."""
