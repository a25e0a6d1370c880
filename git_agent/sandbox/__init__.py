"""The sandbox: the mount plan as data, bwrap discovery, launch, seccomp, Landlock, network."""
