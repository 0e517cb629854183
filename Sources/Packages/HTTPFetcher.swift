import Crypto
import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// What a finished download was: its size and SHA-256, computed while the bytes arrived.
struct FetchedFile: Sendable {
    var size: Int64
    var sha256: String
}

/// Downloads over HTTP(S) with URLSession, streaming into a file while hashing, and reads `file:`
/// URLs directly (local mirrors, test archives).
final class HTTPFetcher: Sendable {
    private let session: URLSession
    private let delegate: Delegate

    /// - Parameter connections: at most this many connections per host.
    init(connections: Int = 8) {
        let configuration = URLSessionConfiguration.default
        configuration.httpMaximumConnectionsPerHost = connections
        configuration.timeoutIntervalForRequest = 60
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        delegate = Delegate()
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: queue)
    }

    deinit { session.finishTasksAndInvalidate() }

    /// The whole body of `url` in memory (Release files).
    func data(_ url: String) async throws(PackagesError) -> Data {
        if let path = Self.localPath(url) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PackagesError(.network, "cannot read \(url)")
            }
            return data
        }
        var data = Data()
        let collector = DataCollector()
        _ = try await transfer(url, sink: .memory(collector), progress: { _ in })
        data = collector.take()
        return data
    }

    /// Downloads `url` into the existing file at `path` (truncating it).
    ///
    /// - Parameter progress: called with the number of new bytes as they arrive.
    func download(_ url: String, to path: String, progress: @escaping @Sendable (Int64) -> Void)
        async throws(PackagesError) -> FetchedFile
    {
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw PackagesError(.cache, "cannot write \(path)")
        }
        defer { try? handle.close() }
        try? handle.truncate(atOffset: 0)
        if let local = Self.localPath(url) {
            return try Self.copyLocal(local, url: url, to: handle, progress: progress)
        }
        return try await transfer(url, sink: .file(handle), progress: progress)
    }

    private func transfer(_ url: String, sink: Transfer.Sink, progress: @escaping @Sendable (Int64) -> Void)
        async throws(PackagesError) -> FetchedFile
    {
        guard let target = URL(string: url) else { throw PackagesError(.network, "malformed URL \(url)") }
        let task = session.dataTask(with: URLRequest(url: target))
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<FetchedFile, PackagesError>, Never>) in
                delegate.register(
                    task.taskIdentifier, Transfer(url: url, sink: sink, progress: progress, continuation: continuation))
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
        return try result.get()
    }

    private static func localPath(_ url: String) -> String? {
        guard url.hasPrefix("file:") else { return nil }
        return URL(string: url)?.path ?? String(url.dropFirst("file:".count))
    }

    private static func copyLocal(
        _ path: String, url: String, to handle: FileHandle, progress: @Sendable (Int64) -> Void
    ) throws(PackagesError) -> FetchedFile {
        guard let input = FileHandle(forReadingAtPath: path) else {
            throw PackagesError(.network, "cannot read \(url)")
        }
        defer { try? input.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        do {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                try handle.write(contentsOf: chunk)
                size += Int64(chunk.count)
                progress(Int64(chunk.count))
            }
        } catch {
            throw PackagesError(.cache, "cannot copy \(url)", cause: "\(error)")
        }
        return FetchedFile(size: size, sha256: hasher.finalize().hex)
    }

    /// Collects an in-memory body; only the delegate queue writes, the caller reads after completion.
    final class DataCollector: @unchecked Sendable {
        // @unchecked: appended on the session's serial delegate queue, read once after the task ended.
        private var data = Data()
        func append(_ chunk: Data) { data.append(chunk) }
        func take() -> Data { data }
    }

    /// One download in flight.
    final class Transfer: @unchecked Sendable {
        // @unchecked: touched only on the session's serial delegate queue.
        enum Sink {
            case file(FileHandle)
            case memory(DataCollector)
        }

        let url: String
        let sink: Sink
        let progress: @Sendable (Int64) -> Void
        let continuation: CheckedContinuation<Result<FetchedFile, PackagesError>, Never>
        var hasher = SHA256()
        var size: Int64 = 0
        var failure: PackagesError?

        init(
            url: String, sink: Sink, progress: @escaping @Sendable (Int64) -> Void,
            continuation: CheckedContinuation<Result<FetchedFile, PackagesError>, Never>
        ) {
            self.url = url
            self.sink = sink
            self.progress = progress
            self.continuation = continuation
        }
    }

    final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        // @unchecked: NSObject; each Transfer is used on the delegate queue only.
        private let transfers = Mutex<[Int: Transfer]>([:])

        func register(_ id: Int, _ transfer: Transfer) { transfers.withLock { $0[id] = transfer } }

        private func transfer(_ id: Int) -> Transfer? { transfers.withLock { $0[id] } }

        func urlSession(
            _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
            completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
        ) {
            let status = (response as? HTTPURLResponse)?.statusCode ?? 200
            if status != 200, let transfer = transfer(dataTask.taskIdentifier) {
                transfer.failure = PackagesError(.network, "\(transfer.url): HTTP status \(status)")
                completionHandler(.cancel)
                return
            }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard let transfer = transfer(dataTask.taskIdentifier), transfer.failure == nil else { return }
            transfer.hasher.update(data: data)
            transfer.size += Int64(data.count)
            switch transfer.sink {
            case .file(let handle):
                do {
                    try handle.write(contentsOf: data)
                } catch {
                    transfer.failure = PackagesError(.cache, "cannot write \(transfer.url)", cause: "\(error)")
                    dataTask.cancel()
                    return
                }
            case .memory(let collector):
                collector.append(data)
            }
            transfer.progress(Int64(data.count))
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            guard let transfer = transfers.withLock({ $0.removeValue(forKey: task.taskIdentifier) }) else { return }
            if let failure = transfer.failure {
                transfer.continuation.resume(returning: .failure(failure))
            } else if let error {
                transfer.continuation.resume(
                    returning: .failure(
                        PackagesError(.network, "cannot fetch \(transfer.url)", cause: error.localizedDescription)))
            } else {
                transfer.continuation.resume(
                    returning: .success(FetchedFile(size: transfer.size, sha256: transfer.hasher.finalize().hex)))
            }
        }
    }
}

extension Digest {
    /// Lowercase hexadecimal, as Release files and lockfiles write digests.
    package var hex: String {
        var text = ""
        text.reserveCapacity(Self.byteCount * 2)
        for byte in self {
            text.append(Character(Unicode.Scalar(hexDigits[Int(byte >> 4)])))
            text.append(Character(Unicode.Scalar(hexDigits[Int(byte & 0x0f)])))
        }
        return text
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)
