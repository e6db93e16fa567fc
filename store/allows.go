package store

// AllowsInForce returns, for each signal key, the allowlist entries in
// force for it (those whose author has not retracted them for that
// signal), in one read transaction. The signal export (node's
// ExportSignals) uses it to tell an allow in force from a withdrawn one.
func (s *Store) AllowsInForce(keys [][]byte) ([][]Reason, error) {
	out := make([][]Reason, len(keys))
	err := s.view(func(b *buckets) error {
		for i, k := range keys {
			rs, err := b.allows(k, signalPrefix(k))
			if err != nil {
				return err
			}
			out[i] = rs
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("allows", err)
	}
	return out, nil
}
