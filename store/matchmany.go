package store

// MatchMany is Match for many signal keys in one read transaction: a bulk
// import asks for thousands at a time, and opening the buckets once per
// key (Match) was most of its cost. out[i] answers keys[i].
func (s *Store) MatchMany(keys [][]byte) ([][]Attestation, error) {
	out := make([][]Attestation, len(keys))
	err := s.view(func(b *buckets) error {
		for i, k := range keys {
			atts, err := b.match(k)
			if err != nil {
				return err
			}
			out[i] = atts
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("match", err)
	}
	return out, nil
}
