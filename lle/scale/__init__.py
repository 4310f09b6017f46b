"""Scale-out: ``lle enhance --ray`` runs photo and video libraries as batch jobs on a Ray cluster.

:mod:`lle.scale.jobs` plans the work (inputs -> outputs, resume, report) without Ray, :mod:`lle.scale.worker` is what
each actor runs, :mod:`lle.scale.ray_batch` drives Ray Data. Importing this package imports no Ray.
"""

__all__: list[str] = []
