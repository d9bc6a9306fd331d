"""TF Serving configuration and deployment files: they parse, agree with each other and with
the exported layout (model name, base path, ports, config files, image version)."""

import os

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
  assert batching.BatchingParameters.from_text(_read('batching_parameters.txt')).max_batch_size \
      == 32
  text = _read('monitoring.config')
  assert 'prometheus_config' in text and 'enable: true' in text
  assert 'path: "/monitoring/prometheus/metrics"' in text


def _server_args(args) -> dict:
  return dict(a.lstrip('-').split('=', 1) for a in args)


def _check_server(image: str, args: list[str]) -> None:
  assert image == f'tensorflow/serving:{_version("tensorflow-serving-api")}'
  flags = _server_args(args)
  assert (flags['port'], flags['rest_api_port']) == ('8500', '8501')
  assert flags['enable_batching'] == 'true'
  for flag, name in (('model_config_file', 'models.config'),
                     ('batching_parameters_file', 'batching_parameters.txt'),
                     ('monitoring_config_file', 'monitoring.config')):
    assert flags[flag] == f'/config/{name}'


def test_docker_compose():
  compose = yaml.safe_load(_read('docker-compose.yml'))
  (service,) = compose['services'].values()
  assert service['entrypoint'] == ['tensorflow_model_server']
  _check_server(service['image'], service['command'])
  assert sorted(service['ports']) == ['8500:8500', '8501:8501']
  mounts = {v['target'] if isinstance(v, dict) else v.split(':')[1]:
            v['source'] if isinstance(v, dict) else v.split(':')[0]
            for v in service['volumes']}
  for name in CONFIG_FILES:  # the files of serving/, mounted where the flags point
    assert mounts[f'/config/{name}'] == f'./{name}'
  assert '/models' in mounts  # holds polyvit/<version>/, base_path of models.config


def test_kubernetes_deployment_and_service():
  docs = list(yaml.safe_load_all(_read(os.path.join('k8s', 'polyvit-serving.yaml'))))
  deployment = next(d for d in docs if d['kind'] == 'Deployment')
  service = next(d for d in docs if d['kind'] == 'Service')
  pod = deployment['spec']['template']['spec']
  (container,) = pod['containers']
  _check_server(container['image'], container['args'])
  mounts = {m['mountPath']: m['name'] for m in container['volumeMounts']}
  volumes = {v['name']: v for v in pod['volumes']}
  assert volumes[mounts['/config']]['configMap']['name'] == 'polyvit-serving-config'
  assert 'persistentVolumeClaim' in volumes[mounts['/models']]
  ports = {p['name']: p['containerPort'] for p in container['ports']}
  assert ports == {'grpc': 8500, 'http': 8501}
  assert {p['name']: p['port'] for p in service['spec']['ports']} == ports
  assert service['spec']['selector'] == deployment['spec']['selector']['matchLabels']
  assert container['readinessProbe']['httpGet']['path'] == '/v1/models/polyvit'
  # The ConfigMap is created from the files of serving/ (see the yaml's header).
  header = _read(os.path.join('k8s', 'polyvit-serving.yaml'))
  for name in CONFIG_FILES:
    assert f'--from-file=serving/{name}' in header
