"""Golem images: the GVMI format, safe rootfs tarballs, building a GVMI without docker, and
finding an image by tag or hash in a Golem image registry.

Nothing here is localnet's: a GVMI built by ``golem-actors image build`` runs on real providers.
``gvmi`` is the format (pure), ``squashfs`` the calls to Debian's squashfs-tools, ``tarballs``
the rootfs tarball rules, ``build`` the pipeline from a directory or tarball (the console
script's ``golem-actors image`` is ``golem_actors.cli.image``). ``info`` is the registry's info
API as data (pure) and ``registry`` the resolver a session asks it with (``RegistryResolver``).
"""
