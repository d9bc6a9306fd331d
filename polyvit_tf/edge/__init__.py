"""What an edge app needs beside the .tflite file: a NumPy-only reference of the preprocessing.

Nothing in this package imports TensorFlow (or any polyvit_tf module that does): it runs in an
environment with only NumPy and the LiteRT runtime (`ai-edge-litert`), see docs/serving.md.

  reference_preprocess   the serving preprocessing of every modality, driven by the TFLite
                         manifest only (`<stem>.json` or the copy embedded in the .tflite)
  classify               a command line: files -> top-k classes with the LiteRT runtime
  requirements.txt       the edge environment (ai-edge-litert, NumPy)
"""
