"""Publish a model as a static site that runs with no server (issue 35).

:mod:`explorer_core.publish.export` turns a loaded model into plain float32 arrays and the few tables its page
needs (the test-set map, the priors, the pixel tables); :mod:`explorer_core.publish.site` writes them with the
site's own HTML, CSS and JavaScript (``site/``) as files a static host or the file system serves. The browser
runs the networks itself (``site/nets.js``): nothing is fetched from anywhere else.
"""

from explorer_core.publish.site import PublishError, build_site, publish, site_zip

__all__ = ["PublishError", "build_site", "publish", "site_zip"]
