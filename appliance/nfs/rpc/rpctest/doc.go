// Package rpctest is a small ONC RPC client for tests: it builds call
// messages byte by byte, frames them with record marking (optionally split
// into several fragments), pipelines calls on one TCP connection or sends
// them as UDP datagrams, and decodes replies without interpreting them, so
// tests can check exactly what a server sent.
package rpctest
