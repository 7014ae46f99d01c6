//go:build !linux

package offheap

// populate is not there on this system: pages are faulted in on first use.
const populate = 0
