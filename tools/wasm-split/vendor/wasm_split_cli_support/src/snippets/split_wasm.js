// Sagedeck's change (vendor/README.md): a chunk is compiled once per URL, and
// the chunks the page names in <link rel="preload"> (its own page's, which the
// server adds) start compiling as soon as this module loads, beside the main
// module, instead of when the router first asks for them.
const compiledChunks = new Map();
function compileChunk(url) {
    let module = compiledChunks.get(url.href);
    if (module === undefined) {
        module = WebAssembly.compileStreaming(fetch(url));
        // A failed compile is forgotten, so a later load fetches again.
        module.catch(() => {
            if (compiledChunks.get(url.href) === module) compiledChunks.delete(url.href);
        });
        compiledChunks.set(url.href, module);
    }
    return module;
}
if (typeof document !== "undefined") {
    for (const link of document.querySelectorAll('link[rel="preload"][href*="/split_"][href$=".wasm"]')) {
        compileChunk(new URL(link.href)).catch(() => {});
    }
}
function wrapAsyncCb(callee) {
    return async (callbackIndex, callbackData) => {
        let success;
        try {
            await callee();
            success = true;
        } catch (e) {
            console.error(e);
            success = false;
        } finally {
            const sharedImports = getSharedImports();
            sharedImports.__wasm_split.__indirect_function_table.get(callbackIndex)(callbackData, success);
        }
    }
}
function makeLoad(fetcher, deps) {
    const loader = async () => {
        const parallelStuff = deps.map(d => d());
        const instantiate = fetcher();
        await Promise.all(parallelStuff);
        const imports = getSharedImports();
        return instantiate(imports);
    };
    let loadingModule = undefined;
    return () => {
        if (loadingModule === undefined) {
            const thisLoad = loader();
            // Memoize successes only: a rejected load must not be cached for
            // the lifetime of the session, or one transient network failure
            // permanently breaks the module. Clearing on rejection lets the
            // next call (e.g. the Rust side re-invoking load after a failed
            // callback) start a fresh attempt.
            thisLoad.catch(() => {
                if (loadingModule === thisLoad) loadingModule = undefined;
            });
            loadingModule = thisLoad;
        }
        return loadingModule;
    }
}
