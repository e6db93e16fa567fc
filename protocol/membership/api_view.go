package membership

import "github.com/staydown/staydown/protocol/pb"

// Describe says what amendment a changes, for people, in the words a
// Proposal's or Version's Change uses: what a node shows of an amendment
// it holds that is neither pending nor passed (a void one), and what its
// event feed says of an amendment as it arrives.
func Describe(a *pb.Amendment) string { return describe(a) }
