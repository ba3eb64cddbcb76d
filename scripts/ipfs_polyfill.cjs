// Node 20 lacks Promise.withResolvers, which js-ipfs 0.66 (via its dependencies) calls.
// Load with `node --require scripts/ipfs_polyfill.cjs node_modules/ipfs/src/cli.js ...`.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
