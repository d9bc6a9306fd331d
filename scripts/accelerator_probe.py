r"""What an image's TensorFlow can use, printed as one JSON line; runs INSIDE the image.

  docker run --rm -i polyvit-tf:dev-gpu python - < scripts/accelerator_probe.py

scripts/check_image.py runs it for `--accelerator=gpu|tpu`. It reports TensorFlow's build
(CUDA / cuDNN versions it was built against), the devices it sees, and for the CUDA wheels
(tensorflow[and-cuda]) every library TensorFlow loads at GPU start-up: the file, whether it
loads (with its own dependencies; only the driver's libcuda comes from the host), and the
versions the CUDA runtime, cuDNN and NCCL report, which need no GPU. Without a GPU and driver
(this machine) `cudaGetDeviceCount` fails with the driver error and TF lists no GPU: expected.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import sys

# Loaded in dependency order (RTLD_GLOBAL), as TensorFlow's DSO loader asks for them.
_CUDA_LIBS = ('cuda_runtime/lib/libcudart.so.12', 'cublas/lib/libcublasLt.so.12',
              'cublas/lib/libcublas.so.12', 'nvjitlink/lib/libnvJitLink.so.12',
              'cusparse/lib/libcusparse.so.12', 'cusolver/lib/libcusolver.so.11',
              'cufft/lib/libcufft.so.11', 'curand/lib/libcurand.so.10',
              'cuda_cupti/lib/libcupti.so.12', 'cudnn/lib/libcudnn.so.8',
              'cudnn/lib/libcudnn_ops_infer.so.8', 'cudnn/lib/libcudnn_cnn_infer.so.8',
              'cudnn/lib/libcudnn_adv_infer.so.8', 'cudnn/lib/libcudnn_ops_train.so.8',
              'cudnn/lib/libcudnn_cnn_train.so.8', 'cudnn/lib/libcudnn_adv_train.so.8',
              'nccl/lib/libnccl.so.2')


def _cuda(site: str) -> dict:
  loaded, missing, failed = [], [], {}
  handles = {}
  for rel in _CUDA_LIBS:
    path = os.path.join(site, 'nvidia', rel)
    if not os.path.exists(path):
      missing.append(rel)
      continue
    try:
      handles[os.path.basename(rel)] = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
      loaded.append(rel)
    except OSError as e:
      failed[rel] = str(e)
  report = {'loaded': loaded, 'missing': missing, 'failed': failed}
  value = ctypes.c_int(0)
  if 'libcudart.so.12' in handles:
    cudart = handles['libcudart.so.12']
    cudart.cudaRuntimeGetVersion(ctypes.byref(value))
    report['cuda_runtime_version'] = value.value
    status = cudart.cudaGetDeviceCount(ctypes.byref(value))
    cudart.cudaGetErrorName.restype = ctypes.c_char_p
    report['cudaGetDeviceCount'] = (value.value if status == 0 else
                                    cudart.cudaGetErrorName(status).decode())
  if 'libcudnn.so.8' in handles:
    handles['libcudnn.so.8'].cudnnGetVersion.restype = ctypes.c_size_t
    report['cudnn_version'] = handles['libcudnn.so.8'].cudnnGetVersion()
  if 'libnccl.so.2' in handles:
    handles['libnccl.so.2'].ncclGetVersion(ctypes.byref(value))
    report['nccl_version'] = value.value
  return report


def main() -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  site = os.path.dirname(os.path.dirname(tf.__file__))
  build = tf.sysconfig.get_build_info()
  marker = os.path.join(sys.prefix, 'ACCELERATOR')
  report = {
      'accelerator': open(marker).read().strip() if os.path.exists(marker) else '',
      'tensorflow': tf.__version__,
      # Which distribution provides the `tensorflow` module, and whether libtpu is there.
      'distribution': sorted(os.path.basename(p).split('-')[0] for pattern in
                             ('tensorflow-*.dist-info', 'tensorflow_tpu-*.dist-info',
                              'libtpu-*.dist-info')
                             for p in glob.glob(os.path.join(site, pattern))),
      'build': {k: build.get(k) for k in ('is_cuda_build', 'cuda_version', 'cudnn_version')},
      'devices': sorted({d.device_type for d in tf.config.list_physical_devices()}),
      'tpu_library_path': os.environ.get('TPU_LIBRARY_PATH', ''),
  }
  if glob.glob(os.path.join(site, 'nvidia', '*')):
    report['cuda'] = _cuda(site)
  print(json.dumps(report, sort_keys=True))


if __name__ == '__main__':
  main()
