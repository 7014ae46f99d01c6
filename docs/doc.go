// Package docs holds no code: it is the home of the operator guides
// (Markdown), and its test runs every command and config snippet the guides
// mark as tested against a real mqgate binary, so that the guides cannot
// drift from what the binary does. README.md describes the markers.
package docs
