// Waits until Pangea answers /readyz, so no test starts before the server.
export default async function globalSetup() {
  const base = process.env.PANGEA_URL ?? 'http://127.0.0.1:3000';
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Pangea did not become ready at ${base}`);
}
