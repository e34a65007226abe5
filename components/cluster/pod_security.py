"""Pod Security `restricted`, in one place: what every PlexiChat container and pod runs with.

Non-root with a fixed uid, a read-only root filesystem, no privilege escalation, every
capability dropped and the RuntimeDefault seccomp profile.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

RUN_AS_UID = 10001
"""Non-root uid/gid for every container (above 10000 so it maps to no host user)."""


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_UID,
        run_as_group=RUN_AS_UID,
        fs_group=RUN_AS_UID,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_UID,
        run_as_group=RUN_AS_UID,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        privileged=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


TMP_VOLUME = k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi"))
"""The root filesystem is read-only; scratch space lives in a bounded emptyDir at /tmp."""
TMP_MOUNT = k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")
