import { defineSuite } from '../suite.js';

defineSuite('kit', 'transfer-orchestrator');
