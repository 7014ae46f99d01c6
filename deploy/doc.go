// Package deploy holds no code: it is the home of the deployment files
// (systemd unit, container image, compose, Kubernetes manifests, Grafana
// dashboard and Prometheus alerts), and its tests check those files against
// the real binary, configuration schema and metrics.
package deploy
