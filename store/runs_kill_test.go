package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// runsKillEnv names the store file a child process of TestRunsSurviveKill
// writes to (TestMain runs the child instead of the tests when it is set).
const runsKillEnv = "STAYDOWN_STORE_KILL_CHILD"

// A process killed with SIGKILL while it applies batches, the run indexes
// merging all the time (small settings, so that stepped merges are in
// progress at most kills): each time, the file it leaves passes Check,
// holds every batch the process reported committed, and the next process
// continues on it. Somewhere in the rounds a kill must have left a
// stepped merge half done, or the test proves little.
func TestRunsSurviveKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "staydown.db")
	rng := rand.New(rand.NewPCG(5, 6))
	a := newAuthor(t, 1)
	var committed uint64
	halfDone := 0
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), runsKillEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it after a random number of committed batches: it is then
		// applying the next one, which may run or finish a merge step.
		sc := bufio.NewScanner(out)
		for range 3 + rng.IntN(30) {
			if !sc.Scan() {
				cmd.Wait()
				t.Fatalf("round %d: the child stopped after seq %d: %v", round, committed, sc.Err())
			}
			if committed, err = strconv.ParseUint(sc.Text(), 10, 64); err != nil {
				t.Fatalf("round %d: child said %q", round, sc.Text())
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		s := mustOpenCopy(t, path) // checked again when the test ends
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: after SIGKILL: %v", round, err)
		}
		h, err := s.Head(a.key)
		if err != nil {
			t.Fatal(err)
		}
		if h.Seq < committed {
			t.Fatalf("round %d: head %d after SIGKILL, the child had committed %d", round, h.Seq, committed)
		}
		for _, idx := range []int{idxIDs, idxAttest} {
			if _, merging := runStats(t, s, idx); merging {
				halfDone++
			}
		}
		t.Logf("round %d: killed after seq %d committed; the file holds %d", round, committed, h.Seq)
	}
	t.Logf("%d of %d kills left a stepped merge half done", halfDone, 2*8)
	if halfDone == 0 {
		t.Error("no kill left a stepped merge half done: the test did not reach what it is for")
	}
}

// runsKillChild is the child of TestRunsSurviveKill: with small run
// settings it appends batches of additions to the store at path, from its
// head on, and prints the head after each commit, until it is killed.
func runsKillChild(path string) {
	runTier0, runFanIn, mergeInline, mergeStep = 4, 2, 6, 5
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "kill child:", err)
		os.Exit(2)
	}
	s, err := Open(path)
	if err != nil {
		fail(err)
	}
	a := newAuthor(childTB{}, 1)
	if a.head, err = s.Head(a.key); err != nil {
		fail(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for {
		var batch []*protocol.Entry
		for range 1 + rng.IntN(30) {
			var sigs []*pb.Signal
			for range 1 + rng.IntN(3) {
				sigs = append(sigs, shaN(rng.Uint64()))
			}
			batch = append(batch, a.next(addition(sigs...)))
		}
		res, err := s.Apply(batch)
		if err != nil {
			fail(err)
		}
		for _, r := range res {
			if r.Outcome != Applied {
				fail(fmt.Errorf("%s: %v", r.Outcome, r.Err))
			}
		}
		fmt.Println(a.head.Seq)
	}
}

// childTB is the testing.TB the child signs with: only Helper is called.
type childTB struct{ testing.TB }

func (childTB) Helper() {}
