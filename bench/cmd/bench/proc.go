//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcStats is what one measured process (with every process it started)
// used, from its start to its exit.
type ProcStats struct {
	WallS float64 `json:"wall_s"`
	UserS float64 `json:"user_cpu_s"`
	SysS  float64 `json:"sys_cpu_s"`
	CPUS  float64 `json:"cpu_s"`
	// PeakRSS is the largest resident set of the process tree: the largest
	// sum over the tree seen by sampling, and at least the largest peak
	// (VmHWM) of one process of the tree. (getrusage's maxrss cannot be
	// used: after a vfork+exec it starts at the parent's resident set.)
	PeakRSS   int64 `json:"peak_rss_bytes"`
	MaxHWM    int64 `json:"max_process_hwm_bytes"`
	Processes int   `json:"processes"`
	ExitCode  int   `json:"exit_code"`
}

// proc is a child process under measurement: its CPU time comes from
// wait4's rusage (which includes the descendants it reaped) plus the
// rusage of descendants it left behind (the harness is a child subreaper,
// so they become its children and are reaped here); its memory from
// sampling the resident set of the whole process tree.
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time

	readers sync.WaitGroup
	sampler sync.WaitGroup
	stop    chan struct{}
	exit    chan struct{} // closed when the process exited
	werr    error
	end     time.Time

	mu       sync.Mutex
	peak     int64         // largest tree RSS sum
	hwm      int64         // largest VmHWM of one process
	cur      int64         // last tree RSS sum
	ticks    map[int]int64 // pid -> last utime+stime seen, in clock ticks
	children map[int]bool  // every descendant seen (not the root)
}

// lineFunc receives each output line with the time it was read.
type lineFunc func(t time.Time, line string)

// startProc starts name with args and env (added to the harness's own),
// sending its stdout and stderr lines to the functions (nil: discarded,
// with stderr kept in the tail that errors show).
func startProc(name string, args, env []string, stdout, stderr lineFunc) (*proc, error) {
	return startProcEvery(name, args, env, stdout, stderr, 100*time.Millisecond)
}

// startProcEvery is startProc sampling memory and CPU every interval.
func startProcEvery(name string, args, env []string, stdout, stderr lineFunc, every time.Duration) (*proc, error) {
	if err := becomeSubreaper(); err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	p := &proc{name: name, cmd: cmd, stop: make(chan struct{}), exit: make(chan struct{}), ticks: map[int]int64{}, children: map[int]bool{}}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	outW.Close()
	errW.Close()
	p.readers.Add(2)
	go p.readLines(outR, stdout)
	go p.readLines(errR, stderr)
	p.sampler.Add(1)
	go p.sample(every)
	go func() {
		p.werr = cmd.Wait()
		p.end = time.Now()
		close(p.exit)
	}()
	return p, nil
}

// readLines reads r until EOF (every process holding the pipe exited).
func (p *proc) readLines(r *os.File, fn lineFunc) {
	defer p.readers.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<16)
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		t := time.Now()
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, b...)
			continue
		}
		if len(b) > 0 || len(long) > 0 {
			if len(long) > 0 {
				b = append(long, b...)
				long = long[:0]
			}
			if fn != nil {
				fn(t, strings.TrimRight(string(b), "\n"))
			}
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(os.Stderr, "bench: reading output of %s: %v\n", p.name, err)
			}
			return
		}
	}
}

// sample records the tree's resident set and CPU ticks every interval.
func (p *proc) sample(every time.Duration) {
	defer p.sampler.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.sampleOnce()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *proc) sampleOnce() {
	tree := processTree(p.cmd.Process.Pid)
	var rss int64
	p.mu.Lock()
	defer p.mu.Unlock()
	for pid, st := range tree {
		rss += st.rss
		if st.ticks > p.ticks[pid] {
			p.ticks[pid] = st.ticks
		}
		if pid != p.cmd.Process.Pid {
			p.children[pid] = true
		}
	}
	p.cur = rss
	p.peak = max(p.peak, rss)
	for pid := range tree {
		p.hwm = max(p.hwm, readHWM(pid))
	}
}

// RSS returns the tree's resident set at the last sample.
func (p *proc) RSS() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// CPU returns the CPU seconds the tree used so far, from the last sample.
func (p *proc) CPU() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t int64
	for _, v := range p.ticks {
		t += v
	}
	return float64(t) / clockTicks
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process (not to its group).
func (p *proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the whole process group.
func (p *proc) Kill() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

// Wait waits for the process, then for the descendants it left behind,
// then for its output to end, and returns what the tree used. A non-zero
// exit is reported in ExitCode and as an error.
func (p *proc) Wait() (ProcStats, error) {
	<-p.exit
	werr := p.werr
	st := ProcStats{WallS: p.end.Sub(p.start).Seconds()}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		st.UserS = tv(ru.Utime)
		st.SysS = tv(ru.Stime)
	}
	st.ExitCode = p.cmd.ProcessState.ExitCode()
	// Descendants still around are now the harness's children.
	deadline := time.Now().Add(30 * time.Second)
	p.mu.Lock()
	left := make([]int, 0, len(p.children))
	for pid := range p.children {
		left = append(left, pid)
	}
	p.mu.Unlock()
	for len(left) > 0 {
		var still []int
		for _, pid := range left {
			if parentOf(pid) != os.Getpid() {
				continue // reaped by its own parent, or gone
			}
			var ws syscall.WaitStatus
			var ru syscall.Rusage
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, &ru)
			switch {
			case err != nil:
			case got == pid:
				st.UserS += tv(ru.Utime)
				st.SysS += tv(ru.Stime)
			default:
				still = append(still, pid)
			}
		}
		left = still
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(p.stop)
	p.sampler.Wait()
	p.readers.Wait()
	st.CPUS = st.UserS + st.SysS
	p.mu.Lock()
	// Sampling misses the last instants of each process but sees processes
	// nobody reaped: take the larger of the two lower bounds.
	var ticks int64
	for _, v := range p.ticks {
		ticks += v
	}
	st.CPUS = max(st.CPUS, float64(ticks)/clockTicks)
	st.MaxHWM = p.hwm
	st.PeakRSS = max(p.peak, p.hwm)
	st.Processes = 1 + len(p.children)
	p.mu.Unlock()
	if werr != nil {
		return st, fmt.Errorf("%s: %w", p.name, werr)
	}
	return st, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

var pageSize = int64(os.Getpagesize())

type procStat struct {
	ppid  int
	ticks int64 // utime + stime
	rss   int64 // bytes
}

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// After the command: state(0) ppid(1) ... utime(11) stime(12) ... rss(21).
	if len(f) < 22 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{ppid: ppid, ticks: ut + stt, rss: rss * pageSize}, true
}

// readHWM returns the peak resident set (VmHWM) of pid, 0 if unknown.
func readHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.Index(s, "VmHWM:")
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+6:])
	if len(f) == 0 {
		return 0
	}
	kb, _ := strconv.ParseInt(f[0], 10, 64)
	return kb * 1024
}

func parentOf(pid int) int {
	st, ok := readStat(pid)
	if !ok {
		return -1
	}
	return st.ppid
}

// processTree returns root and its descendants.
func processTree(root int) map[int]procStat {
	all := map[int]procStat{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return all
	}
	kids := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok {
			continue
		}
		all[pid] = st
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	out := map[int]procStat{}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st, ok := all[pid]
		if !ok {
			continue
		}
		out[pid] = st
		queue = append(queue, kids[pid]...)
	}
	return out
}

var subreaper sync.Once
var subreaperErr error

// becomeSubreaper makes orphaned descendants of the harness's children
// its own children, so that their CPU time can be collected.
func becomeSubreaper() error {
	subreaper.Do(func() {
		const prSetChildSubreaper = 36
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
			subreaperErr = fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", e)
		}
	})
	return subreaperErr
}
