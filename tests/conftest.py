"""Shared test set-up: quiet TensorFlow, CPU only, no network."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
# Tests never download: TFDS and Hugging Face must work from local files only.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('NO_GCE_CHECK', 'true')
