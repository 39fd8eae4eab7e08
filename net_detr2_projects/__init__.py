"""The paper projects of this repository under a name no other package uses.

``net_detr2_projects.<Name>.<package>`` is the folder ``projects/<Name>/<package>/``, e.g.
``from net_detr2_projects.NETNet.netnet import NETNet``: the projects keep their folder layout and this
package only points Python at ``projects/`` (so a checkout must be installed in editable mode, as setup.sh
does, or be the working directory). Nothing named ``projects`` is installed.
"""

from __future__ import annotations

import os

_PROJECTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "projects")
if not os.path.isdir(_PROJECTS):
    raise ImportError(
        f"net_detr2_projects: the projects folder is not at {_PROJECTS}; install the checkout in editable mode "
        "(setup.sh)"
    )
__path__ = [_PROJECTS]
