/**
 * A real gRPC server and client (@grpc/grpc-js) for gateway tests, without protobuf: messages are
 * raw bytes (utf-8 text). Service `test.Echo`:
 *   Unary   answers "<server name>:<request>"
 *   Stream  server-streaming: "<server name>:<request>:<i>" for i = 0..4
 *   Slow    answers after `slowMs`
 *   Flaky   fails UNAVAILABLE on the first call carrying a given request, succeeds on the next
 */
import * as grpc from '@grpc/grpc-js';

const bytes = {
  requestSerialize: (b: Buffer): Buffer => b,
  requestDeserialize: (b: Buffer): Buffer => b,
  responseSerialize: (b: Buffer): Buffer => b,
  responseDeserialize: (b: Buffer): Buffer => b,
};

export const ECHO_SERVICE = {
  unary: { path: '/test.Echo/Unary', requestStream: false, responseStream: false, ...bytes },
  stream: { path: '/test.Echo/Stream', requestStream: false, responseStream: true, ...bytes },
  slow: { path: '/test.Echo/Slow', requestStream: false, responseStream: false, ...bytes },
  flaky: { path: '/test.Echo/Flaky', requestStream: false, responseStream: false, ...bytes },
} satisfies grpc.ServiceDefinition;

export interface GrpcServer {
  readonly port: number;
  /** Calls received, by method name. */
  readonly calls: Record<string, number>;
  stop(): Promise<void>;
}

export async function startGrpcServer(name: string, host: string, slowMs = 2000): Promise<GrpcServer> {
  const server = new grpc.Server();
  const calls: Record<string, number> = {};
  const failedOnce = new Set<string>();
  const count = (m: string): void => void (calls[m] = (calls[m] ?? 0) + 1);
  server.addService(ECHO_SERVICE, {
    unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      count('unary');
      cb(null, Buffer.from(`${name}:${call.request.toString()}`));
    },
    stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      count('stream');
      for (let i = 0; i < 5; i++) call.write(Buffer.from(`${name}:${call.request.toString()}:${i}`));
      call.end();
    },
    slow: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      count('slow');
      const t = setTimeout(() => cb(null, Buffer.from(`${name}:slow`)), slowMs);
      call.on('cancelled', () => clearTimeout(t));
    },
    flaky: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      count('flaky');
      const key = call.request.toString();
      if (!failedOnce.has(key)) {
        failedOnce.add(key);
        cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
        return;
      }
      cb(null, Buffer.from(`${name}:${key}`));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    calls,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

export type EchoClient = grpc.Client & {
  unary(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  slow(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  flaky(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  stream(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
};

const EchoClientCtor = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

/** A cleartext (h2c) client to `address`, sending `authority` as :authority. */
export function echoClient(address: string, authority: string): EchoClient {
  return new EchoClientCtor(address, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as unknown as EchoClient;
}

export interface CallResult {
  readonly code: number;
  readonly details: string;
  readonly reply: string | undefined;
}

/** A unary call (`unary`, `slow` or `flaky`) as { code, details, reply }, never a rejection. */
export function call(client: EchoClient, method: 'unary' | 'slow' | 'flaky', req: string, deadlineMs = 5000): Promise<CallResult> {
  return new Promise((resolve) => {
    client[method](Buffer.from(req), new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
      if (err) resolve({ code: err.code, details: err.details, reply: undefined });
      else resolve({ code: grpc.status.OK, details: '', reply: res?.toString() });
    });
  });
}

/** A server-streaming call: the messages and the final status. */
export function streamCall(client: EchoClient, req: string): Promise<{ code: number; messages: string[] }> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    const s = client.stream(Buffer.from(req), new grpc.Metadata(), { deadline: Date.now() + 5000 });
    s.on('data', (b: Buffer) => messages.push(b.toString()));
    s.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, messages }));
    s.on('status', (st: grpc.StatusObject) => {
      if (st.code === grpc.status.OK) resolve({ code: st.code, messages });
    });
  });
}
