"""Tests of the deployment files: Dockerfile, .dockerignore and the Helm chart in helm/testmode-proxy."""
