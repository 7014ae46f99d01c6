package broker

// SessionState reports whether a session exists for client id and whether a
// connection is attached to it. It exists for the package's external tests,
// which use it to wait until the broker has finished with a connection
// (there is no packet that tells a third party so).
func (b *Broker) SessionState(id string) (exists, online bool) {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil {
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return true, s.conn != nil
}

// StoreRecords returns the number of records the broker has written to its
// log since Start (0 without a store): tests use it to check that a path
// never touches the disk.
func (b *Broker) StoreRecords() uint64 {
	if b.store == nil {
		return 0
	}
	return b.store.Records()
}
