"""TF Serving configuration and deployment files: they parse, agree with each other and with
the exported layout (model name, base path, ports, config files, image version), and serve
the variable-shape video signatures from a server without batching."""

import os
import re

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import batching

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = os.path.join(ROOT, 'serving')
CONFIG_FILES = ('models.config', 'batching_parameters.txt', 'monitoring.config')


def _read(name: str) -> str:
  with open(os.path.join(SERVING, name)) as f:
    return f.read()


def _version(package: str) -> str:
  with open(os.path.join(ROOT, 'constraints.txt')) as f:
    for line in f:
      if line.lower().startswith(package + '=='):
        return line.split('==')[1].strip()
  raise AssertionError(f'{package} not pinned in constraints.txt')


def test_models_config_is_a_model_server_config():
  config = text_format.Parse(_read('models.config'), model_server_config_pb2.ModelServerConfig())
  (model,) = config.model_config_list.config
  assert (model.name, model.base_path, model.model_platform) == (
      'polyvit', '/models/polyvit', 'tensorflow')
  assert model.model_version_policy.latest.num_versions == 1


def test_batching_and_monitoring_files():
  text = _read('batching_parameters.txt')
  assert batching.BatchingParameters.from_text(text).max_batch_size == 32
  # Only fields of TF Serving's BatchingParameters proto (an unknown one stops the server;
  # its proto is not in the tensorflow-serving-api wheel, so the names are listed here).
  fields = set(re.findall(r'^(\w+)', re.sub(r'#[^\n]*', '', text), re.M))
  assert fields == {'max_batch_size', 'batch_timeout_micros', 'max_enqueued_batches',
                    'num_batch_threads', 'pad_variable_length_inputs'}
  # Off: TF Serving's padding repeats each request's first value (batching_parameters.txt).
  assert re.search(r'^pad_variable_length_inputs: false$', text, re.M)
  text = _read('monitoring.config')
  assert 'prometheus_config' in text and 'enable: true' in text
  assert 'path: "/monitoring/prometheus/metrics"' in text


def _server_args(args) -> dict:
  return dict(a.lstrip('-').split('=', 1) for a in args)


def _check_server(image: str, args: list[str], batched: bool) -> tuple[str, str]:
  """Checks one TF Serving container; returns its (gRPC, REST) ports."""
  assert image == f'tensorflow/serving:{_version("tensorflow-serving-api")}'
  flags = _server_args(args)
  assert flags['enable_batching'] == ('true' if batched else 'false')
  names = [('model_config_file', 'models.config'), ('monitoring_config_file',
                                                    'monitoring.config')]
  if batched:
    names.append(('batching_parameters_file', 'batching_parameters.txt'))
  else:
    assert 'batching_parameters_file' not in flags
  for flag, name in names:
    assert flags[flag] == f'/config/{name}'
  return flags['port'], flags['rest_api_port']


SERVERS = {True: ('8500', '8501'), False: ('8510', '8511')}  # batched, unbatched (video)


def test_docker_compose():
  compose = yaml.safe_load(_read('docker-compose.yml'))
  services = compose['services']
  assert sorted(services) == ['polyvit-serving', 'polyvit-serving-video']
  for name, batched in (('polyvit-serving', True), ('polyvit-serving-video', False)):
    service = services[name]
    assert service['entrypoint'] == ['tensorflow_model_server']
    ports = _check_server(service['image'], service['command'], batched)
    assert ports == SERVERS[batched]
    assert sorted(service['ports']) == [f'{p}:{p}' for p in ports]
    mounts = {v['target'] if isinstance(v, dict) else v.split(':')[1]:
              v['source'] if isinstance(v, dict) else v.split(':')[0]
              for v in service['volumes']}
    for config in CONFIG_FILES:  # the files of serving/, mounted where the flags point
      assert mounts[f'/config/{config}'] == f'./{config}'
    assert '/models' in mounts  # holds polyvit/<version>/, base_path of models.config
    port_hex = f'{int(ports[1]):04X}'  # the healthcheck waits for the REST port
    assert f':{port_hex} ' in service['healthcheck']['test'][1]


def test_kubernetes_deployment_and_service():
  docs = list(yaml.safe_load_all(_read(os.path.join('k8s', 'polyvit-serving.yaml'))))
  deployment = next(d for d in docs if d['kind'] == 'Deployment')
  service = next(d for d in docs if d['kind'] == 'Service')
  pod = deployment['spec']['template']['spec']
  batched, video = pod['containers']
  volumes = {v['name']: v for v in pod['volumes']}
  ports = {}
  for container, is_batched in ((batched, True), (video, False)):
    grpc_port, rest_port = _check_server(container['image'], container['args'], is_batched)
    assert (grpc_port, rest_port) == SERVERS[is_batched]
    mounts = {m['mountPath']: m['name'] for m in container['volumeMounts']}
    assert volumes[mounts['/config']]['configMap']['name'] == 'polyvit-serving-config'
    assert 'persistentVolumeClaim' in volumes[mounts['/models']]
    ports.update({p['name']: p['containerPort'] for p in container['ports']})
    assert container['readinessProbe']['httpGet']['path'] == '/v1/models/polyvit'
    assert 'memory' in container['resources']['limits']
  assert ports == {'grpc': 8500, 'http': 8501, 'grpc-video': 8510, 'http-video': 8511}
  assert {p['name']: p['port'] for p in service['spec']['ports']} == ports
  assert service['spec']['selector'] == deployment['spec']['selector']['matchLabels']
  # The ConfigMap is created from the files of serving/ (see the yaml's header).
  header = _read(os.path.join('k8s', 'polyvit-serving.yaml'))
  for name in CONFIG_FILES:
    assert f'--from-file=serving/{name}' in header
