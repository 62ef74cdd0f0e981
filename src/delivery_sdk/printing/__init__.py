"""The print side of postal service: print centres and their configuration, routing load, print packages
(送达回证 + address block + the documents), batches with their manifests.

Modules: :mod:`.centres` (configuration, TOML, registration), :mod:`.load` (jobs routed per centre and
Beijing day, for capacity), :mod:`.package` (the print-ready PDF), :mod:`.batch` (batches, cut-offs,
manifests). The adapter that pushes batches to a centre over HTTP is the plugin package
``delivery-sdk-printcentre`` (httpx stays out of the core).
Nothing is imported here, so importing the package costs nothing (reportlab and pypdf load on first use).
"""
