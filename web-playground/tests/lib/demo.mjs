// A small demo story made through the API (the screenshots and the benchmark show it): a
// novel with a volume, three outlined chapters (two of them written by the fake
// provider), and a story bible with states as of chapter 1 and 2.

import { CHINESE, ENGLISH, MORNING, charsOf, wordsOf } from './fake-llm.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForJob(server, jobId) {
  for (let i = 0; i < 600; i += 1) {
    const { generationJob } = await server.gql('query($id: ID!) { generationJob(id: $id) { status error } }', { id: jobId });
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(generationJob.status)) return generationJob;
    await sleep(100);
  }
  throw new Error(`job ${jobId} did not end`);
}

async function write(server, fake, chapterId, pieces, targetWords) {
  fake.play({ pieces, firstTokenDelayMs: 0, intervalMs: 0 });
  const { generateChapter } = await server.gql(
    'mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }',
    { i: { chapterId, targetWords } },
  );
  const job = await waitForJob(server, generateChapter.job.id);
  if (job.status !== 'SUCCEEDED') throw new Error(`demo chapter not written: ${job.error}`);
}

/** Makes the English demo novel; returns `{ novelId, chapterIds }`. */
export async function englishDemo(server, fake) {
  const { createNovel } = await server.gql(
    'mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }',
    { i: { title: 'The Lighthouse Keeper', genre: 'mystery', language: 'en', description: 'A keeper, a storm, a letter.' } },
  );
  const novelId = createNovel.novel.id;
  const { createVolume } = await server.gql(
    'mutation($i: CreateVolumeInput!) { createVolume(input: $i) { volume { id } } }',
    { i: { novelId, title: 'The Storm Season', summary: 'Autumn on the reef: the stranger arrives.' } },
  );
  const volumeId = createVolume.volume.id;
  const outlines = [
    ['The Storm', 'Mara finds a stranger on the rocks below the lighthouse, holding a sealed letter.'],
    ['Morning', 'The stranger wakes; he will not give his name, only asks for the letter.'],
    ['The Letter', 'Mara opens the letter: it is from her mother, who left twenty years ago.'],
  ];
  const chapterIds = [];
  for (const [i, [title, outline]] of outlines.entries()) {
    const { createChapter } = await server.gql(
      'mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }',
      { i: { novelId, volumeId, seq: i + 1, title, outline, targetWordCount: i === 1 ? 55 : 110 } },
    );
    chapterIds.push(createChapter.chapter.id);
  }
  await write(server, fake, chapterIds[0], wordsOf(ENGLISH), 110);
  await write(server, fake, chapterIds[1], wordsOf(MORNING), 55);
  const entities = [
    ['Mara', 'CHARACTER', ['the keeper'], 'Keeps the light on the reef, alone since her mother left.', 9],
    ['The stranger', 'CHARACTER', [], 'Washed up in the storm with a sealed letter.', 7],
    ['The lighthouse', 'LOCATION', ['the light'], 'A granite tower on the reef, ninety-one steps.', 5],
    ['The sealed letter', 'ITEM', [], 'Addressed to Mara in her mother\'s hand.', 6],
  ];
  const ids = {};
  for (const [name, kind, aliases, description, importance] of entities) {
    const { createEntity } = await server.gql(
      'mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }',
      { i: { novelId, name, kind, aliases, description, importance } },
    );
    ids[name] = createEntity.entity.id;
  }
  const states = [
    ['Mara', 0, 'Alone at the light; drags the stranger above the tide line.'],
    ['The sealed letter', 0, 'Unopened, drying by the fire.'],
    ['The stranger', 1, 'Awake, silent about his name.'],
  ];
  for (const [name, chapter, stateText] of states) {
    await server.gql('mutation($i: RecordEntityStateInput!) { recordEntityState(input: $i) { entityState { id } } }', {
      i: { entityId: ids[name], chapterId: chapterIds[chapter], state: stateText },
    });
  }
  return { novelId, chapterIds };
}

/** Makes a Chinese demo novel with one written chapter; returns `{ novelId, chapterId }`. */
export async function chineseDemo(server, fake) {
  const { createNovel } = await server.gql(
    'mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }',
    { i: { title: '灯塔看守人', genre: '悬疑', language: 'zh' } },
  );
  const novelId = createNovel.novel.id;
  const { createChapter } = await server.gql(
    'mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }',
    { i: { novelId, seq: 1, title: '暴风雨', outline: '玛拉在礁石上发现了一个抱着信的陌生人。', targetWordCount: 100 } },
  );
  const chapterId = createChapter.chapter.id;
  await write(server, fake, chapterId, charsOf(CHINESE, 2), 100);
  return { novelId, chapterId };
}
