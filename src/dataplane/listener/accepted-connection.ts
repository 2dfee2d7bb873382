/**
 * The DownstreamConnection the listener hands to a network filter, one per accepted connection.
 *
 * A class rather than an object literal: the client's address is read lazily (a getpeername
 * system call that a tunnel without an access log, RBAC or EgressIP caller rules never needs), and
 * an object literal with getters is created in V8's slow (dictionary) mode — about 1.5 KB and
 * over a microsecond per connection, and every later property read a dictionary lookup. Here the
 * getters live on the prototype and every other field is an own data property, so the object has
 * one fixed shape. A spread of it would drop the getters: copy one with copyConnection().
 */
import type { Socket } from 'node:net';
import type { FilterChain } from '../../snapshot/types.js';
import { plainIp, type DataPlaneServices, type DownstreamConnection, type PeerCertificateFacts } from '../context.js';
import type { PeerIdentity } from '../mesh/peer-identity.js';
import type { CompiledListener, CompiledSnapshot } from '../route/compile.js';
import type { OriginalDestination } from '../route/original-dst.js';

/** What the listener knows about a connection when it hands it on: every field but the lazily read ones. */
export type AcceptedFacts = Omit<AcceptedConnection, 'remoteAddress' | 'remotePort' | 'listenerPort'>;

export class AcceptedConnection implements DownstreamConnection {
  readonly socket: Socket;
  readonly snapshot: CompiledSnapshot;
  readonly listener: CompiledListener;
  readonly chain: FilterChain;
  readonly chainWhy: string;
  readonly listenerPort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  readonly tls: boolean;
  readonly mutualTls: boolean;
  readonly peer: PeerIdentity | undefined;
  readonly peerCertificate: PeerCertificateFacts | undefined;
  readonly startTime: number;
  readonly startHr: bigint;
  readonly originalDestination: OriginalDestination | undefined;
  readonly initialBytes: Buffer | undefined;
  readonly services: DataPlaneServices;
  readonly currentSnapshot: () => CompiledSnapshot;
  private clientAddress: string | undefined = undefined;
  private clientPort: number | undefined = undefined;

  constructor(f: AcceptedFacts) {
    this.socket = f.socket;
    this.snapshot = f.snapshot;
    this.listener = f.listener;
    this.chain = f.chain;
    this.chainWhy = f.chainWhy;
    this.listenerPort = f.listener.listener.port;
    this.localAddress = f.localAddress;
    this.localPort = f.localPort;
    this.sni = f.sni;
    this.alpn = f.alpn;
    this.tls = f.tls;
    this.mutualTls = f.mutualTls;
    this.peer = f.mutualTls ? f.peer : undefined;
    this.peerCertificate = f.peerCertificate;
    this.startTime = f.startTime;
    this.startHr = f.startHr;
    this.originalDestination = f.originalDestination;
    this.initialBytes = f.initialBytes;
    this.services = f.services;
    this.currentSnapshot = f.currentSnapshot;
  }

  // Read when first asked (a getpeername system call). The HTTP engine asks at once, while the socket is open.
  get remoteAddress(): string {
    return (this.clientAddress ??= plainIp(this.socket.remoteAddress));
  }

  get remotePort(): number {
    return (this.clientPort ??= this.socket.remotePort ?? 0);
  }
}
