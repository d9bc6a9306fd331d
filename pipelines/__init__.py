"""The TFX pipeline of polyvit_tf: components, the pipeline definition and its runners."""
