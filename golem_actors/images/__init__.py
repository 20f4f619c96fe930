"""Golem images: the GVMI format, safe rootfs tarballs, and building a GVMI without docker.

Nothing here is localnet's: a GVMI built by ``golem-actors image build`` runs on real providers.
``gvmi`` is the format (pure), ``squashfs`` the calls to Debian's squashfs-tools, ``build`` the
pipeline from a directory or tarball, ``commands`` the ``golem-actors image`` sub-command.
"""
