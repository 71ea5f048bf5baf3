// Package labtest brings the repository's network lab (scripts/lab) up for
// a Go test and takes it down when the test ends.
//
//	l := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1})
//	n1, c1 := l.Node("n1"), l.Client("c1")
//	ln, _ := netns.Listen(n1.NS, "tcp", n1.PublicIP+":0")
//	c, _ := netns.Dial(c1.NS, "tcp", ln.Addr().String())
//	l.Cut("n1", "dedicated")
//
// Every lab gets a unique name, so tests (and labs a developer keeps up)
// never meet. Up skips the test when it cannot run (not root, tools
// missing). The lab is taken down in t.Cleanup; if the test failed, the
// tail of every node's nasd log is logged first.
package labtest
