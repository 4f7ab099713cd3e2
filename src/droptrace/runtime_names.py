"""Container and pod names, read from what the runtimes keep on disk: never by talking to them.

A cgroup gives a container's id and a pod's UID (enrich.py); operators know them by name. The names
are in files the runtimes and the kubelet maintain, read here and nowhere written:

- Podman (rootful) and CRI-O, through containers/storage: `<storage>/<driver>-containers/containers.json`,
  a list of {"id": ..., "names": [...]}; Podman's container names are its storage names.
- Docker: `<docker>/containers/<id>/config.v2.json`, whose "Name" is "/<name>".
- Kubernetes: the kubelet's log directory of each pod, `/var/log/pods/<namespace>_<pod>_<uid>`
  (namespace and pod names cannot contain `_`).

Reading files keeps the exporter free of API sockets that would let it start or stop containers.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Dict, Optional, Tuple

CONTAINERS_STORAGE = "/var/lib/containers/storage"
DOCKER_CONTAINERS = "/var/lib/docker/containers"
KUBELET_POD_LOGS = "/var/log/pods"
MAX_STATE_FILE = 64 << 20  # bytes: a containers.json larger than this is not read


def _read_json(path: str) -> object:
    try:
        if os.path.getsize(path) > MAX_STATE_FILE:
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):  # absent, unreadable, or being rewritten
        return None


class RuntimeNames:
    """Names by container id and by pod UID; reload() reads the runtimes' state again."""

    def __init__(self, containers_storage: str = CONTAINERS_STORAGE, docker: str = DOCKER_CONTAINERS,
                 pod_logs: str = KUBELET_POD_LOGS) -> None:
        self.containers_storage, self.docker, self.pod_logs = containers_storage, docker, pod_logs
        self._storage: Dict[str, str] = {}  # full container id -> name
        self._pods: Dict[str, Tuple[str, str]] = {}  # pod UID -> (namespace, pod)
        self._docker: Dict[str, Optional[str]] = {}  # full id -> name, read once per id

    def reload(self) -> None:
        self._storage = self._read_storage()
        self._pods = self._read_pods()
        self._docker = {}

    def container_name(self, container_id: str) -> Optional[str]:
        """The name of the container with this full (64-hex) id, if a runtime's state names it."""
        name = self._storage.get(container_id)
        if name is None:
            if container_id not in self._docker:
                self._docker[container_id] = self._read_docker(container_id)
            name = self._docker[container_id]
        return name

    def pod(self, uid: str) -> Tuple[Optional[str], Optional[str]]:
        """(namespace, pod name) of the pod with this UID, (None, None) if the kubelet names none."""
        return self._pods.get(uid, (None, None))

    def _read_storage(self) -> Dict[str, str]:
        names: Dict[str, str] = {}
        pattern = os.path.join(self.containers_storage, "*-containers", "containers.json")  # one per driver
        for path in sorted(glob.glob(pattern)):
            entries = _read_json(path)
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    given = [n for n in entry.get("names") or [] if isinstance(n, str) and n]
                    if given:
                        names.setdefault(entry["id"], given[0])
        return names

    def _read_docker(self, container_id: str) -> Optional[str]:
        if not container_id.isalnum():  # an id, not a path
            return None
        config = _read_json(os.path.join(self.docker, container_id, "config.v2.json"))
        name = config.get("Name") if isinstance(config, dict) else None
        return name.lstrip("/") or None if isinstance(name, str) else None

    def _read_pods(self) -> Dict[str, Tuple[str, str]]:
        pods: Dict[str, Tuple[str, str]] = {}
        try:
            entries = os.listdir(self.pod_logs)
        except OSError:
            return pods
        for entry in entries:
            parts = entry.split("_")
            if len(parts) == 3 and all(parts):
                namespace, pod, uid = parts
                pods[uid] = (namespace, pod)
        return pods
