// A stock golem-js 3.6 requestor, written as for the real Golem network: nothing in it knows
// about localnet. golem-js itself reads YAGNA_API_URL, YAGNA_APPKEY and GOLEM_REGISTRY_URL from
// the environment; the payment platform (erc20-holesky-tglm) and the subnet (public) are its
// defaults.
//
//   node transform.cjs IMAGE_TAG INPUT_FILE OUTPUT_FILE
//
// Rents one provider for an image named by tag, uploads INPUT_FILE with GFTP (golem-js's "ws"
// storage: the file is served on the requestor's node through yagna's GSB API), upper-cases it
// in the container (taking 2 s, so debit notes come), downloads the result twice (to
// OUTPUT_FILE, and into memory, where golem-js checks its SHA3-256), then ends the rental:
// activity destroyed, agreement terminated, and golem-js waits for the invoice and accepts it.
// The last stdout line is one JSON object with what the test checks against yagna; any
// failure exits non-zero.
//
// CommonJS on purpose: golem-js 3.6's ES-module build calls js-sha3 through a namespace import
// that has no sha3_256 in Node, so downloadData() throws "jsSha3.sha3_256 is not a function"
// there (a golem-js bug, whatever the network); its CommonJS build checks the hash.
const { readFile } = require("node:fs/promises");
const { GolemNetwork } = require("@golem-sdk/golem-js");

const [imageTag, inputPath, outputPath] = process.argv.slice(2);
if (!imageTag || !inputPath || !outputPath) {
  console.error("usage: node transform.cjs IMAGE_TAG INPUT_FILE OUTPUT_FILE");
  process.exit(2);
}

const order = {
  demand: {
    workload: { imageTag },
    // a debit note every second (localnet's shortest), so golem-js accepts some mid-agreement
    payment: { midAgreementDebitNoteIntervalSec: 1 },
  },
  market: {
    rentHours: 0.25,
    pricing: {
      model: "linear",
      maxStartPrice: 0.5,
      maxCpuPerHourPrice: 1.0,
      maxEnvPerHourPrice: 0.5,
    },
  },
};

async function main() {
  const glm = new GolemNetwork({ dataTransferProtocol: "ws" });
  try {
    await glm.connect();
    const rental = await glm.oneOf({ order, signalOrTimeout: 60_000 });
    const exe = await rental.getExeUnit(60_000);
    await exe.uploadFile(inputPath, "/golem/input/in.txt");
    const command =
      "tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt && sleep 2 && wc -c < /golem/output/out.txt";
    const ran = await exe.run(command);
    if (ran.result !== "Ok") throw new Error(`the command failed: ${JSON.stringify(ran)}`);
    await exe.downloadFile("/golem/output/out.txt", outputPath);
    const data = await exe.downloadData("/golem/output/out.txt"); // golem-js checks the SHA3-256
    const expected = (await readFile(inputPath, "latin1")).toUpperCase();
    const inMemory = Buffer.from(data.data).toString("latin1");
    const onDisk = await readFile(outputPath, "latin1");
    if (inMemory !== expected || onDisk !== expected) {
      throw new Error(`wrong result: ${inMemory.length} bytes in memory, ${onDisk.length} on disk`);
    }
    await rental.stopAndFinalize(60_000);
    console.log(
      JSON.stringify({
        agreementId: rental.agreement.id,
        providerId: rental.agreement.provider.id,
        providerName: rental.agreement.provider.name,
        activityId: exe.activity.id,
        stdout: ran.stdout,
        bytes: onDisk.length,
      }),
    );
  } finally {
    await glm.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error("stock golem-js requestor failed:", err);
    process.exit(1);
  },
);
